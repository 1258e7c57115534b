"""HTTP: thin routes that parse, call the request or feedback path, and answer in OpenAI's shape."""
