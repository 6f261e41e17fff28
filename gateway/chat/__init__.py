"""The chatbot: one conversation turn at a time, state carried by the client.

`dialogue.ChatEngine` holds the turn logic (merge, follow-up choice, recommendations),
`replies` the bilingual wording, `intents` the small-talk detection. No gRPC server code
here: the ChatService servicer wraps ChatEngine.
"""
