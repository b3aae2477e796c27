"""What we ship for the Kore.ai bot: the pieces a team pastes into Kore, kept here as the one source.

- `snippets`: the Start Flow script and the Agent Transfer dialog's Script node, as `.js` files.
  The same files are what `kore-connect kore-config` prints and what the tests run in embedded V8
  with Kore's objects, unchanged, so what we test is what teams paste (the local twin's bot is to
  run them the same way).
- `service_node`: the Agent Transfer dialog's Service node (URL, method, headers, body), built
  from the stack's `MetadataEndpointUrl`.
"""
