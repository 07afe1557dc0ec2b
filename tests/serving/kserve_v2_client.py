"""Calls a V2 server with the kserve package's REST client; run in tools/kserve-client's own environment (kserve pins
pandas below the service's) by tests/serving/test_protocols.py:

    uv run --project tools/kserve-client --locked python tests/serving/kserve_v2_client.py URL MODEL INPUTS.json

INPUTS.json: [{"name", "datatype", "data"}, ...], one tensor per feature. Prints {"live", "ready", "model_ready",
"outputs": {name: [values]}} as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(url: str, model: str, inputs_file: Path) -> dict[str, object]:
    tensors = json.loads(inputs_file.read_text(encoding="utf-8"))
    inputs = []
    for tensor in tensors:
        dtype = object if tensor["datatype"] == "BYTES" else np.float64
        values = np.array(tensor["data"], dtype=dtype)
        infer_input = InferInput(name=tensor["name"], shape=list(values.shape), datatype=tensor["datatype"])
        infer_input.set_data_from_numpy(values, binary_data=False)
        inputs.append(infer_input)
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    try:
        live = await client.is_server_live(url)
        ready = await client.is_server_ready(url)
        model_ready = await client.is_model_ready(url, model)
        response = await client.infer(url, InferRequest(model_name=model, infer_inputs=inputs), model_name=model)
    finally:
        await client.close()
    outputs = {output.name: output.as_numpy().tolist() for output in response.outputs}
    return {"live": live, "ready": ready, "model_ready": model_ready, "outputs": outputs, "id": response.id}


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
    print(json.dumps(result, default=lambda value: value.decode() if isinstance(value, bytes) else str(value)))
