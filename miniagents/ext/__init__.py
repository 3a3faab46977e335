"""Extensions built on the agents layer: LLM agents, tools, chat history and the console.

- :mod:`miniagents.ext.llm`: the OpenAI, Anthropic and offline LLM agents;
- :mod:`miniagents.ext.tools`: agents and typed functions as tools a model can call;
- :mod:`miniagents.ext.mcp`: the tools of MCP servers (extra ``mcp``);
- :mod:`miniagents.ext.history`: chat history (the base class, in memory, in a markdown
  file, the history agents);
- :mod:`miniagents.ext.console`: the console agents and the ``miniagents chat`` command line;
- :mod:`miniagents.ext.file_agents`: ``file_output_agent``;
- :mod:`miniagents.ext.ray`: agents on a Ray cluster (extra ``ray``);
- :mod:`miniagents.ext.errors`: the errors of these modules (each package has its own).

The former homes ``chat_history_md``, ``history_agents``, ``console_user_agent`` and
``misc_agents`` only re-export: the seeds' import paths, supported. ``console_agents`` and
``chat_cli`` re-export too, deprecated (they warn when imported). All are listed in
``tests/test_compatibility.py``.
"""

__all__: list[str] = []
