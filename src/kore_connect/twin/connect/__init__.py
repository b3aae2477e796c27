"""The local Amazon Connect: a contact, and a flow interpreter that runs exported flows unchanged.

- `contact`: the contact record and its trace (state as data);
- `references`: `$.` references resolved as Connect resolves them;
- `interpreter`: runs a validated `Flow` for a contact, action by action; the side effects (a
  Lambda invocation, a transfer to a third party, a queue) go through collaborators, so the
  interpreter is plain logic tested with plain data;
- `lambdas`: the flow's Lambda invocations on the local runtime (the template's functions);
- `connector`: the external voice connector (`TransferParticipantToThirdParty`) as a SIP client;
- `sip_call`: one transfer on the wire: the UAC's INVITE, ACK, CANCEL, PRACK and BYE;
- `local`: one contact through a flow on the local twin (the settings, the run, its document).
"""
