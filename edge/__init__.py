"""The edge: Envoy in front of the gateway replicas (TLS, gRPC, gRPC-Web, JSON, the web page).
Its config is rendered from edge/envoy.yaml.template by edge.config; edge.runner runs Envoy."""
