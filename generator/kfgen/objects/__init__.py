"""Object checks: every built object validated strictly, plus identity, namespace and CRD-order rules.

- findings.py: what the checks report (Finding, Violation, EnvironmentReport);
- compiled.py: the closures both schema compilers build, and how their errors are worded;
- builtin.py: built-in kinds, from the strict schemas kubernetes-validate ships per Kubernetes version;
- crds.py: custom resources, from the openAPIV3Schema of the CRD version that defines them;
- checks.py: the checks of one environment, and the Validator that picks an object's schema;
- controllers.py: the objects under gitops/<env>/ and the CRDs of the controllers that read them;
- verdicts.py: the checks as `kfgen check` runs them, with reports and verdicts kept in the build cache.
"""

from .builtin import CLUSTER_SCOPED_BUILTINS, kubernetes_schemas
from .checks import GITOPS_COMPONENT, Validator, check_environment, check_objects, clear_caches
from .crds import CrdIndex
from .findings import EnvironmentReport, Finding, Violation

__all__ = [
    "CLUSTER_SCOPED_BUILTINS",
    "GITOPS_COMPONENT",
    "CrdIndex",
    "EnvironmentReport",
    "Finding",
    "Validator",
    "Violation",
    "check_environment",
    "check_objects",
    "clear_caches",
    "kubernetes_schemas",
]
