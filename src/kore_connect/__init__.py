"""kore-connect: hand calls between Amazon Connect and a Kore.ai voice bot, and back,
without losing what the bot learned."""

__version__ = "0.1.0"
