"""eaglet's vLLM backend, Python side: the offline benchmark runner (`python -m eaglet_vllm bench`).

It runs in the user's vLLM environment and knows no model family. What a target needs from vLLM
that the installed vLLM lacks (Eagle3 for its architecture, say) ships with the target plugin as a
`vllm.general_plugins` entry point in the plugin's Python folder, which eaglet puts on PYTHONPATH.
"""
