"""The actions of the flow language as the local Amazon Connect runs them, one function each,
`(ContactRun, Action) -> Branch`; `HANDLERS` says which runs each action type.

- `participant`: prompts, DTMF input, Lex bots, disconnecting, transfers to a third party;
- `flow_control`: compare, loop, distribute, wait, hours, metrics, flows and modules;
- `contact_data`: contact and flow attributes, the contact's data, Lambda functions;
- `routing`: queues, agents, callbacks;
- `recorded`: the settings with no audible effect, kept on the contact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kore_connect.contactflow.language import ACTIONS, ActionType, Kind
from kore_connect.contactflow.model import Action
from kore_connect.twin.connect.actions import contact_data, flow_control, participant, recorded, routing
from kore_connect.twin.connect.branch import Branch
from kore_connect.twin.connect.contact_run import ContactRun

Handler = Callable[[ContactRun, Action], Awaitable[Branch]]
_A = ActionType
MODELLED: dict[ActionType, Handler] = {
    _A.MESSAGE_PARTICIPANT: participant.message,
    _A.MESSAGE_PARTICIPANT_ITERATIVELY: participant.message_iteratively,
    _A.GET_PARTICIPANT_INPUT: participant.get_input,
    _A.CONNECT_PARTICIPANT_WITH_LEX_BOT: participant.lex_bot,
    _A.DISCONNECT_PARTICIPANT: participant.disconnect,
    _A.TRANSFER_PARTICIPANT_TO_THIRD_PARTY: participant.third_party,
    _A.UPDATE_FLOW_LOGGING_BEHAVIOR: flow_control.logging,
    _A.COMPARE: flow_control.compare,
    _A.LOOP: flow_control.loop,
    _A.DISTRIBUTE_BY_PERCENTAGE: flow_control.distribute,
    _A.END_FLOW_EXECUTION: flow_control.end_flow,
    _A.TRANSFER_TO_FLOW: flow_control.transfer_to_flow,
    _A.INVOKE_FLOW_MODULE: flow_control.invoke_module,
    _A.END_FLOW_MODULE_EXECUTION: flow_control.end_module,
    _A.UPDATE_FLOW_ATTRIBUTES: flow_control.flow_attributes,
    _A.WAIT: flow_control.wait,
    _A.CHECK_HOURS_OF_OPERATION: flow_control.check_hours,
    _A.CHECK_METRIC_DATA: flow_control.check_metric,
    _A.GET_METRIC_DATA: flow_control.get_metrics,
    _A.UPDATE_CONTACT_ATTRIBUTES: contact_data.attributes,
    _A.UPDATE_CONTACT_DATA: contact_data.contact_data,
    _A.INVOKE_LAMBDA_FUNCTION: contact_data.invoke_lambda,
    _A.UPDATE_CONTACT_TARGET_QUEUE: routing.target_queue,
    _A.TRANSFER_CONTACT_TO_QUEUE: routing.to_queue,
    _A.TRANSFER_CONTACT_TO_AGENT: routing.to_agent,
    _A.DEQUEUE_CONTACT_AND_TRANSFER_TO_QUEUE: routing.dequeue,
    _A.UPDATE_CONTACT_CALLBACK_NUMBER: routing.callback_number,
    _A.CREATE_CALLBACK_CONTACT: routing.create_callback,
}
HANDLERS: dict[ActionType, Handler] = {
    kind: MODELLED[kind] if spec.kind is Kind.MODELLED else recorded.recorded
    for kind, spec in ACTIONS.items()
}
