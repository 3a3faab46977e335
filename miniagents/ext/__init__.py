"""Extensions built on the agents layer: LLM agents, chat history and console agents.

- :mod:`miniagents.ext.llm`: the OpenAI, Anthropic and offline LLM agents;
- :mod:`miniagents.ext.tools`: agents and typed functions as tools a model can call;
- :mod:`miniagents.ext.mcp`: the tools of MCP servers (extra ``mcp``);
- :mod:`miniagents.ext.chat_history_md`: ``ChatHistoryMD``, a chat history in a markdown file;
- :mod:`miniagents.ext.history_agents`: agents that keep a conversation and replay it;
- :mod:`miniagents.ext.console_agents`: the console agents (the user at a terminal);
- :mod:`miniagents.ext.console_user_agent`: ``create_console_user_agent``;
- :mod:`miniagents.ext.file_agents`: ``file_output_agent``;
- :mod:`miniagents.ext.misc_agents`: the console and file agents, by their former home;
- :mod:`miniagents.ext.ray`: agents on a Ray cluster (extra ``ray``);
- :mod:`miniagents.ext.errors`: the errors of these modules (each package has its own);
- :mod:`miniagents.ext.chat_cli`: the ``miniagents chat`` command line.
"""

__all__: list[str] = []
