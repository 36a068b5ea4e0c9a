"""The baseline for `evocli ask`: a bare Python + requests script doing the same POST."""

import os
import sys

import requests

base_url = sys.argv[1]
prompt = " ".join(sys.argv[2:])
response = requests.post(
    f"{base_url}/chat/completions",
    json={"model": "gpt-5.2", "messages": [{"role": "user", "content": prompt}]},
    headers={"Authorization": f"Bearer {os.environ['EVOLINK_API_KEY']}"},
    timeout=(10, 600),
)
response.raise_for_status()
print(response.json()["choices"][0]["message"]["content"])
