"""The client tests use the session's shared inference server and gateway (`inference_target`,
`gateway_target` in tests/conftest.py)."""
