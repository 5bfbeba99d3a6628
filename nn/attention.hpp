#pragma once
// Attention layers (issue 15): MultiheadAttention, TransformerBlock.
