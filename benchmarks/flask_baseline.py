"""The naive baseline: the same model behind a minimal Flask app, written the way the usual tutorials do
(`request.get_json()`, a DataFrame per request, `app.run`). Run: python -m benchmarks.flask_baseline PORT."""

from __future__ import annotations

import sys

import pandas as pd
from flask import Flask, jsonify, request

from mltemplate.model import load


def create_app() -> Flask:
    app = Flask(__name__)
    trained = load()

    @app.post("/predict")
    def predict():  # type: ignore[no-untyped-def]
        frame = pd.DataFrame(request.get_json()["records"])
        probabilities = trained.pipeline.predict_proba(frame)
        classes = trained.classes
        return jsonify(
            {
                "predictions": [
                    {"label": classes[row.argmax()], "probabilities": dict(zip(classes, row.tolist(), strict=True))}
                    for row in probabilities
                ]
            }
        )

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(sys.argv[1]))
