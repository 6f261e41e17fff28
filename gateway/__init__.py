"""The front service: text -> vector (local or Amazon Bedrock) -> inference server, and chat.
Never imports TensorFlow."""
