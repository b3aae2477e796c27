"""A local Lambda runtime (a foundation of the twin: it imports no other part of it).

- `invocation`: `Invocation`, what one invocation came to (pure);
- `runtime`: `LocalFunction`, a function's warm worker processes, and `FunctionSpec`;
- `worker`: one worker process (one Lambda execution environment), run as
  `python -m kore_connect.twin.lambda_runtime.worker`;
- `context`: `LocalLambdaContext`, the context object a handler gets.
"""
