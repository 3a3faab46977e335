"""MiniAgents: typed, replayable streams of messages for LLM-based multi-agent systems."""
