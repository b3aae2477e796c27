"""The local twin of the call path: what stands in for AWS and Kore on one machine."""
