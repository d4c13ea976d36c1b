"""NonMaxSuppression: greedy selection of boxes by score, dropping boxes that overlap a selected one."""

import numpy as np

from .. import infer
from ..infer import InferError
from ..registry import defop


def _nms_infer(boxes, scores, max_out, iou, score, *, center_point_box):
    bs, ss = boxes.shape, scores.shape
    if bs is not None and (len(bs) != 3 or (infer.known_int(bs[2]) and bs[2] != 4)):
        raise InferError(f"NonMaxSuppression boxes must be [batch, boxes, 4], got {list(bs)}")
    if ss is not None and len(ss) != 3:
        raise InferError(f"NonMaxSuppression scores must be [batch, classes, boxes], got {list(ss)}")
    return infer.tensor("int64", (None, 3))


def _corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """[..., 4] boxes as (y_min, x_min, y_max, x_max)."""
    if center_point_box:
        xc, yc, w, h = np.moveaxis(boxes, -1, 0)
        return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
    y1, x1, y2, x2 = np.moveaxis(boxes, -1, 0)
    return np.stack([np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2), np.maximum(x1, x2)], axis=-1)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one corner box with each of `others` (0 where the union is empty)."""
    ih = np.maximum(0.0, np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]))
    iw = np.maximum(0.0, np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]))
    inter = ih * iw
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _scalar(x, default):
    return default if x is None or np.asarray(x).size == 0 else np.asarray(x).reshape(-1)[0].item()


@defop("NonMaxSuppression", inputs=["boxes", "scores", "max_output_boxes_per_class?", "iou_threshold?",
                                    "score_threshold?"], outputs=["selected_indices"],
       attrs={"center_point_box": 0}, since=10, infer=_nms_infer)
def non_max_suppression(boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold, *,
                        center_point_box):
    """Rows (batch, class, box) of the selected boxes, per batch and class in descending score.
    A box is dropped when its IoU with a selected box is above iou_threshold, or its score is not
    above score_threshold (when given; a tie is dropped, as in ONNX Runtime); at most
    max_output_boxes_per_class (default 0: none) per class. Equal scores keep the box order."""
    boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3 or \
            scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]:
        raise ValueError(f"NonMaxSuppression needs boxes [B, N, 4] and scores [B, C, N]; got "
                         f"{list(boxes.shape)} and {list(scores.shape)}")
    limit = int(_scalar(max_output_boxes_per_class, 0))
    iou_t = float(_scalar(iou_threshold, 0.0))
    score_t = _scalar(score_threshold, None)
    corners = _corners(boxes, center_point_box)
    selected = []
    if limit > 0:
        for b in range(scores.shape[0]):
            for c in range(scores.shape[1]):
                s = scores[b, c]
                order = np.argsort(-s, kind="stable")
                if score_t is not None:
                    order = order[s[order] > score_t]
                cand = corners[b, order]
                alive = np.ones(len(order), bool)
                kept = 0
                for i in range(len(order)):
                    if not alive[i]:
                        continue
                    selected.append((b, c, int(order[i])))
                    kept += 1
                    if kept >= limit:
                        break
                    rest = slice(i + 1, None)
                    alive[rest] &= _iou(cand[i], cand[rest]) <= iou_t
    return np.array(selected, dtype=np.int64).reshape(-1, 3)
