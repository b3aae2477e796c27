"""The twin as users run it (the wiring on top of the emulators): `kore-connect up`, `call`,
`serve` and `demo` are built from these.

- `twin`: `LocalTwin`, the whole call path on one machine;
- `report`: `CallReport`, what each part did in one call, and its JSON form;
- `parts`: the twin's processes (`serve api`, `serve gateway`), started and watched;
- `store`: `LocalStore`, the metadata store of a local run (SQLite, or a DynamoDB endpoint);
- `api_token`: the generated token of a local run and where it is kept;
- `call_log`: the calls the twin has placed, for the dashboard;
- `running`: how other commands find a running `kore-connect up`;
- `roundtrip`: `kore-connect demo`'s round trip through the real handlers, in-process.
"""
