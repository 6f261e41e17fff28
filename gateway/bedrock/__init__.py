"""Amazon Bedrock control plane for the gateway's vectorizer: `python -m gateway bedrock
setup|status|teardown|smoke|policy` (control.py, smoke.py) and the region's Nova Pro inference
profile (profiles.py). The data-plane vectorizers are in gateway/vectorizers/bedrock.py."""
