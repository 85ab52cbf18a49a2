"""Graph-level optimizations: constant folding, canonicalization, batch-norm folding,
the blocked (NCHWc) layout, tree-ensemble strategies and the `graph-optimize` pipeline
(with xDSL's CSE and DCE)."""

from mlc.transforms.graph.canonicalize import (
    CANONICALIZATION_PATTERNS,
    ComposeReshapes,
    ComposeTransposes,
    FoldPadIntoConv,
    GraphCanonicalizePass,
    PretransposeGemmWeight,
    RemoveNeutralOperand,
    RemoveNoOp,
)
from mlc.transforms.graph.conv_to_matmul import PointwiseConvToMatmul, PointwiseConvToMatmulPass
from mlc.transforms.graph.fold_batchnorm import (
    BATCHNORM_PATTERNS,
    FoldBatchNorm,
    FoldBatchNormPass,
    FoldChannelAffine,
    channel_vector,
    fold_channel_affine,
)
from mlc.transforms.graph.fold_constants import (
    DEFAULT_MAX_ELEMENTS,
    FoldConstantOp,
    FoldConstantsPass,
    should_fold,
)
from mlc.transforms.graph.layout import (
    PROPAGATION_PATTERNS,
    BlockConv,
    BlockConvInteger,
    BlockedLayoutPass,
    CancelBlockedPair,
    PropagateBinary,
    PropagateConcat,
    PropagateLinearQuant,
    PropagatePool,
    PropagateUnary,
    default_block,
)
from mlc.transforms.graph.optimize import GraphOptimizePass
from mlc.transforms.graph.pack_weights import PackMatmulWeights, PackMatmulWeightsPass
from mlc.transforms.graph.pad_gemm import (
    PadGemmColumns,
    PadGemmColumnsPass,
    PadMatmulColumns,
    PadMatmulIntegerColumns,
)
from mlc.transforms.graph.quantize import (
    QDQ_PATTERNS,
    FoldQdqDataMovement,
    FoldQdqPass,
    FoldQdqProduct,
    FoldReluIntoQuantize,
)
from mlc.transforms.graph.trees import (
    TreeEnsembleStrategyPass,
    TreeEnsembleToGemm,
    TreeEnsembleToPerfect,
    choose_strategy,
    f32_thresholds,
    strategy_costs,
)

__all__ = [
    "QDQ_PATTERNS",
    "FoldQdqDataMovement",
    "FoldQdqPass",
    "FoldQdqProduct",
    "FoldReluIntoQuantize",
    "PROPAGATION_PATTERNS",
    "PointwiseConvToMatmul",
    "PointwiseConvToMatmulPass",
    "BlockConv",
    "BlockConvInteger",
    "BlockedLayoutPass",
    "CancelBlockedPair",
    "PropagateBinary",
    "PropagateLinearQuant",
    "PropagateConcat",
    "PropagatePool",
    "PropagateUnary",
    "default_block",
    "BATCHNORM_PATTERNS",
    "CANONICALIZATION_PATTERNS",
    "DEFAULT_MAX_ELEMENTS",
    "ComposeReshapes",
    "ComposeTransposes",
    "FoldBatchNorm",
    "FoldBatchNormPass",
    "FoldChannelAffine",
    "FoldConstantOp",
    "FoldConstantsPass",
    "FoldPadIntoConv",
    "GraphCanonicalizePass",
    "GraphOptimizePass",
    "PackMatmulWeights",
    "PackMatmulWeightsPass",
    "PadGemmColumns",
    "PadGemmColumnsPass",
    "PadMatmulColumns",
    "PadMatmulIntegerColumns",
    "PretransposeGemmWeight",
    "RemoveNeutralOperand",
    "RemoveNoOp",
    "TreeEnsembleStrategyPass",
    "TreeEnsembleToGemm",
    "TreeEnsembleToPerfect",
    "choose_strategy",
    "f32_thresholds",
    "strategy_costs",
    "channel_vector",
    "fold_channel_affine",
    "should_fold",
]
