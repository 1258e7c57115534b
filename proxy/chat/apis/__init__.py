"""The APIs other than chat completions that are translated to it: OpenAI's Responses and
Anthropic's Messages. Each has a request module (`to_chat`) and an answer module (its `Writer`)."""
