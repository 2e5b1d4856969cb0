"""What an agent can do: files, shell, git, browser and kernel tools.

Each tool is a pydantic input model, the JSON schema derived from it for function
calling, one async function and its limits (`agentos.tools.base.Tool`). Role configs
name tools; `agentos.tools.registry.get_tools(names)` returns them. Importing this
package imports nothing heavy: Playwright loads on the first browser call.
"""
