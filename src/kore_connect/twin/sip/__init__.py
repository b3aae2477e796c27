"""Our own SIP stack, sans-IO in the style of h11: protocol logic as plain data and functions, with
a thin asyncio layer outside. The local gateway (UAS) and Connect's connector (UAC) both run on it.

- `message`: requests and responses as frozen data; the parser, with size limits and precise errors.
- `fields`: the header values the stack acts on (Via, addresses, CSeq, URI parts) read into data.
- `rules`: which requests a UAS refuses (400, 505, 416, 420, 415, 406) and the bare answer it sends.
- `transactions`: RFC 3261 §17 (and RFC 6026) server and client transactions, their timers as data.
- `dialog`: RFC 3261 §12 dialogs: route sets, remote targets, CSeq, the in-dialog requests they build.
- `framing`: messages cut from a TCP stream by Content-Length; CRLF keepalives.
- `quiet_log`: a log a peer cannot flood: a few lines a second per source, the rest counted.
- `transport`: the asyncio UDP and TCP transports; a reply that cannot be sent is a log line,
  never a closed socket.
- `endpoint`: a transport, its transaction layer and timers, around a transaction user.
- `trace`: one SIP message as a call's trace keeps it, and its JSON form.
"""
