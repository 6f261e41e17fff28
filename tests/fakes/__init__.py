"""Fake external services for tests: real wire protocols on 127.0.0.1, scriptable per test."""
