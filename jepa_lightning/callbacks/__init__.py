"""Lightning callbacks: evaluation reports, online probes, embedding diagnostics and embedding export."""

from jepa_lightning.callbacks.attentive_probe import (
    AttentiveProbeSettings,
    OnlineAttentiveProbe,
    attentive_probe_accuracy,
    datamodule_attentive_probe_accuracy,
    datamodule_few_label_attentive_probe_accuracies,
)
from jepa_lightning.callbacks.checkpoint import RunCheckpoint
from jepa_lightning.callbacks.collapse import CollapseMonitor, RankMeMonitor
from jepa_lightning.callbacks.control import ControlReport, control_report
from jepa_lightning.callbacks.embeddings import EmbeddingWriter
from jepa_lightning.callbacks.linear_probe import (
    LabelBudget,
    LinearProbeReport,
    datamodule_few_label_probe_accuracies,
    datamodule_probe_accuracy,
    embed_loader,
    few_label_probe_accuracies,
    linear_probe_accuracy,
)
from jepa_lightning.callbacks.link_prediction import LinkPredictionReport, link_prediction_auc
from jepa_lightning.callbacks.online_probes import OnlineKNNProbe, OnlineLinearProbe, embed_batch, knn_predict
from jepa_lightning.callbacks.progress import LineProgressBar
from jepa_lightning.callbacks.retrieval import CrossModalRetrievalReport, retrieval_scores
from jepa_lightning.callbacks.spectrum import SpectrumPlot

__all__ = [
    "AttentiveProbeSettings",
    "CollapseMonitor",
    "ControlReport",
    "CrossModalRetrievalReport",
    "EmbeddingWriter",
    "LabelBudget",
    "LineProgressBar",
    "LinearProbeReport",
    "LinkPredictionReport",
    "OnlineAttentiveProbe",
    "OnlineKNNProbe",
    "OnlineLinearProbe",
    "RankMeMonitor",
    "RunCheckpoint",
    "SpectrumPlot",
    "attentive_probe_accuracy",
    "control_report",
    "datamodule_attentive_probe_accuracy",
    "datamodule_few_label_attentive_probe_accuracies",
    "datamodule_few_label_probe_accuracies",
    "datamodule_probe_accuracy",
    "embed_batch",
    "embed_loader",
    "few_label_probe_accuracies",
    "knn_predict",
    "linear_probe_accuracy",
    "link_prediction_auc",
    "retrieval_scores",
]
