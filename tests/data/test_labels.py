import numpy as np
import pytest

from fornet_cli.data import labels as L


def test_every_field_matches_cityscapesscripts() -> None:
    official = pytest.importorskip("cityscapesscripts.helpers.labels", reason="cityscapesscripts is a dev extra")
    assert len(L.LABELS) == len(official.labels) == 35
    for ours, theirs in zip(L.LABELS, official.labels):
        assert (
            ours.name, ours.id, ours.train_id, ours.category, ours.category_id,
            ours.has_instances, ours.ignore_in_eval, ours.color,
        ) == (
            theirs.name, theirs.id, theirs.trainId, theirs.category, theirs.categoryId,
            theirs.hasInstances, theirs.ignoreInEval, theirs.color,
        )


def test_lookup_tables() -> None:
    ids = np.arange(34, dtype=np.uint8)
    train = L.id_to_train_id(ids)
    assert train[7] == 0 and train[33] == 18 and train[0] == 255 and train[29] == 255
    evaluated = ids[train != 255]
    assert len(evaluated) == 19
    assert np.array_equal(L.train_id_to_id(train[evaluated]), evaluated)
    assert L.train_id_to_id(np.array([255], dtype=np.uint8))[0] == 0
    assert tuple(L.colorize(np.array([[0, 255]], dtype=np.uint8))[0, 0]) == (128, 64, 128)
    assert L.CLASS_NAMES[0] == "road" and L.CLASS_NAMES[-1] == "bicycle" and len(L.CLASS_NAMES) == 19
    assert L.INSTANCE_CLASS_NAMES == ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
    assert L.CATEGORIES == ("void", "flat", "construction", "object", "nature", "sky", "human", "vehicle")
