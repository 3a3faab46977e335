"""The fixtures of the tests that run one check on each wire format with the real SDKs.

``llm`` is each API in turn (OpenAI Chat Completions, Anthropic Messages, the Responses
API), ``client`` its real SDK client for the fake server. A test module with its own
``llm`` or ``client`` (another list of APIs, a client of its own) keeps its own.
"""

from tests.ext.llm.providers import client, llm, server  # noqa: F401
from tests.fakes.fixtures import fake_llm  # noqa: F401
