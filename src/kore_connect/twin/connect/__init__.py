"""The local Amazon Connect: a contact, and a flow interpreter that runs exported flows unchanged.

- `contact`: the contact record and its trace (state as data);
- `references`: `$.` references resolved as Connect resolves them;
- `interpreter`: runs a validated `Flow` for a contact, action by action; the side effects (a
  Lambda invocation, a transfer to a third party, a queue) go through collaborators, so the
  interpreter is plain logic tested with plain data.
"""
