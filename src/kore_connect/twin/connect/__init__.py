"""The local Amazon Connect: a contact, and a flow interpreter that runs exported flows unchanged.

- `contact`: the contact record and its trace (state as data);
- `references`: `$.` references resolved as Connect resolves them, whole or within text;
- `interpreter`: runs a validated `Flow` for a contact, action by action, until it ends;
- `contact_run`: one contact's run: the flows it is in (modules too), the world, the caller;
- `branch`: what an action did (the branch, why, where next) and the condition operators;
- `actions/`: one function per action type of the flow language (`actions.HANDLERS`);
- `collaborators`: what the interpreter asks of the outside (a Lambda invoker, the third-party
  transfer, the queues), so that it is plain logic tested with plain data;
- `caller`: the scripted caller: keys, utterances, when they hang up;
- `world`: the local world file: hours, queues and metrics, functions, Lex bots, flows, the clock;
- `speech`: what a prompt says as text (SSML rendered) and how long saying it takes;
- `lex`: what a local Lex bot understands of an utterance (intents and slots, by sample utterances);
- `phone`: phone numbers as Connect reads them (E.164, or a country's local number);
- `lambdas`: the flow's Lambda invocations on the local runtime (the template's functions) and
  the world's functions in front of them;
- `connector`: the external voice connector (`TransferParticipantToThirdParty`) as a SIP client;
- `sip_call`: one transfer on the wire: the UAC's INVITE, ACK, CANCEL, PRACK and BYE;
- `local`: one contact through a flow on the local twin (the settings, the run).
"""
