"""`kore-connect doctor`: checks a deployed kore-connect stack end to end, the way a call uses it.

How it works: the stack's outputs (named in `kore_connect.stack`) say where everything is. The
doctor checks the table, then plays the Kore bot against the real API (without a token, with a
wrong one, then with the token from the stack's secret) for a synthetic contact ID, invokes the
retrieve function as the Connect flow would, checks the Connect instance may invoke it, and
deletes the synthetic item whatever happened.

- `report`: the result of each check (`CheckResult`) and of the run (`Report`), pure data.
- `checks`: `run_doctor` and the stack check, over injectable clients (`DoctorClients`).
- `api`: the HTTP probes of the metadata API.
- `resources`: the table, token secret, retrieve function, Connect and clean-up checks.
- `clients`: the real boto3 and httpx clients, built from a profile and a region.
"""
