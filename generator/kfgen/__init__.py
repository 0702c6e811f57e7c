"""kfgen: a Kubeflow platform from one spec, rendered as kustomize and kept in sync by GitOps."""

__version__ = "0.1.0"
