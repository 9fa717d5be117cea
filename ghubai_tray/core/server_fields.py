"""What each kind of model server may be sent beyond OpenAI's own fields, judged one by one.

A request for a server other than Ollama is passed through to its ``/v1`` endpoint
(Ollama's is served through its native API instead: see openai_bridge). OpenAI's
fields are judged once, in :mod:`ghubai_tray.core.request_body`'s table; every
server adds its own, and the hub's anonymous clients can send any of them, so
each one a server documents is named here, kept where it only shapes the answer,
or left out with the reason the owner reads in the log. A field named nowhere is
left out silently, as for Ollama: the server never sees what the worker does not
know.

The reasons come from each server's documentation and source: llama.cpp's
server documentation and ``server-common.cpp`` (``params_from_json_cmpl``:
``n_predict`` wins over ``max_tokens``, ``-1`` meaning no limit), KoboldCpp's
``/api/extra`` documentation, vLLM's ``protocol.py`` extras and LM Studio's REST
API pages (docs/MODEL_SERVERS.md has the table).

Plain data: :mod:`ghubai_tray.core.request_body` turns it into rules.
"""

from __future__ import annotations

from collections.abc import Mapping

from ghubai_tray.core.server_kinds import ServerKind

_OUTPUT_WAY = ("another way to ask for the output length (-1 is no limit); "
               "max_tokens carries this machine's limit")
_MEMORY = "decides how the model server uses the owner's memory"
_GRAMMAR = ("a grammar or pattern the server compiles on the owner's machine, with no bound "
            "on its cost; response_format's JSON schema is checked and allowed instead")
_MANY = "asks for several answers at once: several times the work of one"
_ADAPTERS = "changes the adapters the owner's model runs with"
_LOADING = "how long a model stays loaded is the owner's choice"
_OTHER_MODEL = "loads a second model, which the owner did not share"
_RUNNER = "a runner setting: it decides how the owner's hardware is used"
_PROBS = "asks for the probabilities of the prompt or of many tokens per token"
_BIAS = "changes the model's word choice at the token level"

# Sampling settings that every one of these servers reads and that change only the
# answer (OpenAI's own, temperature and the like, are in request_body's table).
SAMPLING = ("top_k", "min_p", "repeat_penalty", "typical_p", "tfs_z", "repeat_last_n",
            "mirostat", "mirostat_tau", "mirostat_eta")

KEPT: Mapping[ServerKind, tuple[str, ...]] = {
    ServerKind.LLAMACPP: (*SAMPLING, "dynatemp_range", "dynatemp_exponent", "xtc_probability",
                          "xtc_threshold", "dry_multiplier", "dry_base",
                          "dry_allowed_length", "dry_penalty_last_n", "return_tokens"),
    ServerKind.KOBOLDCPP: (*SAMPLING, "rep_pen", "rep_pen_range", "top_a", "tfs",
                           "typical", "dynatemp_range", "smoothing_factor"),
    ServerKind.LMSTUDIO: ("top_k", "min_p", "repeat_penalty"),
    ServerKind.OPENAI: ("top_k", "min_p", "repetition_penalty"),
}

DROPPED: Mapping[ServerKind, Mapping[str, str]] = {
    ServerKind.LLAMACPP: {
        "n_predict": _OUTPUT_WAY, "id_slot": _MEMORY, "cache_prompt": _MEMORY,
        "n_keep": _MEMORY, "n_discard": _MEMORY, "n_cache_reuse": _MEMORY,
        "grammar": _GRAMMAR, "json_schema": _GRAMMAR, "samplers": _RUNNER,
        "lora": _ADAPTERS, "n_probs": _PROBS, "post_sampling_probs": _PROBS,
        "t_max_predict_ms": _RUNNER, "n_indent": _RUNNER, "n_cmpl": _MANY,
        "speculative.n_max": _RUNNER, "speculative.n_min": _RUNNER,
        "logit_bias": _BIAS,
    },
    ServerKind.KOBOLDCPP: {
        "max_length": _OUTPUT_WAY, "max_context_length": _RUNNER, "genkey": _MEMORY,
        "memory": "text the server adds before the prompt, outside the owner's limits",
        "grammar": _GRAMMAR, "grammar_retain_state": _GRAMMAR, "n": _MANY,
        "logit_bias": _BIAS,
    },
    ServerKind.LMSTUDIO: {
        "ttl": _LOADING, "draft_model": _OTHER_MODEL, "n": _MANY,
    },
    ServerKind.OPENAI: {
        "n": _MANY, "best_of": _MANY, "use_beam_search": _MANY,
        "guided_json": _GRAMMAR, "guided_regex": _GRAMMAR, "guided_choice": _GRAMMAR,
        "guided_grammar": _GRAMMAR, "structured_outputs": _GRAMMAR, "grammar": _GRAMMAR,
        "prompt_logprobs": _PROBS, "min_tokens": _RUNNER, "ignore_eos": _OUTPUT_WAY,
        "max_completion_tokens_per_step": _RUNNER, "ttl": _LOADING, "draft_model": _OTHER_MODEL,
        "lora_request": _ADAPTERS, "logit_bias": _BIAS,
    },
}
