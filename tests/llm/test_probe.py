"""The layer probe: what it pools is what the head would read, and it picks a layer."""

import pytest
import torch

import llm
from llm.errors import ModelError
from llm.settings import FinetuneSettings
from llm.train.finetune import batches, prompt_prefix
from llm.train.probe import pooled_by_layer, probe
from tests.llm.test_finetune import labelled


def test_pooled_states_are_the_document_tokens_mean_entering_the_layer(tiny_gemma):
    loaded = llm.load(str(tiny_gemma), "fp32")
    frame = labelled(1)
    settings = FinetuneSettings(batch_size=5)
    states, labels = pooled_by_layer(loaded, frame, [1, 2], settings)
    assert states[1].shape == (frame.height, loaded.config.hidden_size) and len(labels) == 12
    prefix = prompt_prefix(loaded.tokenizer)
    captured = []
    loaded.model.model.layers[0].register_forward_hook(lambda _m, _i, out: captured.append(
        out[0] if isinstance(out, tuple) else out))
    for batch in batches(loaded.tokenizer, frame, settings)[:1]:
        for position, row in enumerate(batch.rows):
            ids = batch.ids[position, :int(batch.lengths[position])].tolist()
            with torch.no_grad():
                loaded.model(input_ids=torch.tensor([prefix + ids]))
            doc = batch.mask[position, :len(ids)].bool()
            expected = captured[-1][0, len(prefix):][doc].mean(0)
            torch.testing.assert_close(torch.from_numpy(states[1][row]), expected,
                                       atol=1e-4, rtol=1e-4)


def test_probe_scores_each_layer_on_each_file_and_names_the_best(tiny_qwen):
    loaded = llm.load(str(tiny_qwen), "fp32")
    report = probe(loaded, labelled(2), {"seen": labelled(1)}, [1, 2], log=lambda _: None)
    assert set(report["layers"]) == {1, 2} and report["best"] in (1, 2)
    best = report["layers"][report["best"]]
    assert best["mean"] == max(row["mean"] for row in report["layers"].values())
    assert best["files"]["seen"] >= 0.9   # the texts it was fitted on, read back
    with pytest.raises(ModelError, match="1..2"):
        probe(loaded, labelled(1), {"seen": labelled(1)}, [0, 3])
