# Made from the table of miniagents.ext.a2a (Reexports.stub): do not edit.

from miniagents.ext.a2a.client import a2a_agent as a2a_agent
from miniagents.ext.a2a.client import afetch_agent_card as afetch_agent_card
from miniagents.ext.a2a.errors import A2ATaskRejectedError as A2ATaskRejectedError
from miniagents.ext.a2a.messages import A2AAuthRequest as A2AAuthRequest
from miniagents.ext.a2a.messages import A2AData as A2AData
from miniagents.ext.a2a.messages import A2AFile as A2AFile
from miniagents.ext.a2a.messages import A2AInputRequest as A2AInputRequest
from miniagents.ext.a2a.messages import A2AMessage as A2AMessage
from miniagents.ext.a2a.messages import A2AReply as A2AReply
from miniagents.ext.a2a.push import A2APushNotifications as A2APushNotifications
from miniagents.ext.a2a.server import A2ASkill as A2ASkill
from miniagents.ext.a2a.server import a2a_app as a2a_app

__all__ = [
    "a2a_agent", "afetch_agent_card",
    "A2ATaskRejectedError",
    "A2AAuthRequest", "A2AData", "A2AFile", "A2AInputRequest", "A2AMessage", "A2AReply",
    "A2APushNotifications",
    "A2ASkill", "a2a_app",
]
