"""The local twin of the call path: what stands in for AWS, Amazon Connect and Kore on one machine.
Its layers (docs/architecture.md; tests/twin/test_layers.py keeps them):

- foundations, which import no other part of it: `sip/` (our SIP core), `lambda_runtime/`
  (functions in warm worker processes), `template` (what template.yaml describes), `record_database`
  (its private SQLite files);
- emulators, which import only foundations: `apigw/` (API Gateway), `connect/` (Amazon Connect),
  `kore/` (Kore's voice gateway and bot);
- wiring: `local/` (the twin as users run it) and `dashboard/`.
"""
