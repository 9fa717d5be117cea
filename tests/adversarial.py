"""Endpoint strings a hub could send to reach something other than inference.

Shared by the allowlist's property tests, the worker's refusal test and the hub
fuzz, so that a trick added here is tried everywhere.
"""

from __future__ import annotations

from tests.testbed.ollama import MANAGEMENT_PATHS

# Whole paths: Ollama's management routes, and inference paths bent by case, dots,
# encodings, hosts, schemes, queries, fragments, look-alikes and truncation.
ADVERSARIAL_PATHS = [
    *MANAGEMENT_PATHS, "/api/pull/", "/API/CHAT", "/api/chat/../pull", "/api/%70ull",
    "/api/%63hat", "//evil.example/api/chat", "http://127.0.0.1:1/api/chat",
    "/api/chat?x=/api/pull", "/api/chat?x=1", "/api/chat#", "\\api\\pull", "\\api\\chat",
    "/api/chat\u2044", "/api/ｃhat", "api/chat", "", "/v1/models", "/api/tags", "/api/ps",
    "/api/version", "/", "/api/chat%00"]

# Pieces to add before or after an allowed path.
PATH_PIECES = ["/", "//", ".", "..", "%2e", "%2f", "%2F", "%00", "\\", "?", "#", ";", ":", "@",
               "api", "chat", "pull", "delete", "v1", "generate", " ", "\t", "\u2215", "\u0430",
               "\uff0e", "~", "&"]
