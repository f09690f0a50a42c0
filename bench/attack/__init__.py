"""The attack suite (`python -m bench attack`): forged credentials, cross-tenant access, function
grants and a seeded fuzzer against any stack, counting 5xx, leaks, breaches, unexpected writes and
gateway crashes. See README "Attack suite"."""
