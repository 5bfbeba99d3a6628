#pragma once
// TensorDataset: rows of any number of arrays of any rank that share their first dimension, and
// optionally labels (torch.utils.data.TensorDataset): sequences (N, time, features), pairs of
// inputs, images with targets. batch(rows) gathers the same rows of each, for train::Trainer.
#include <cstddef>
#include <span>
#include <vector>

#include "graph/array.hpp"
#include "ops/ops.hpp"

namespace xg::data {

template <class T>
struct TensorBatch {
    std::vector<Array<T>> x;  // the rows of each tensor, in the data set's order
    Labels y;                 // the rows of the labels; empty when the data set has none
};

template <class T>
class TensorDataset {
public:
    // ShapeError naming TensorDataset and the shapes unless every tensor has at least one
    // dimension and all (and the labels, when given) have the same number of rows; ValueError
    // when there is neither a tensor nor a label. The arrays are moved in from `tensors`; a braced
    // list, TensorDataset({a, b}), copies them first (an initializer_list's elements are const),
    // so large arrays go in through a vector filled with std::move.
    explicit TensorDataset(std::vector<Array<T>> tensors, Labels labels = {});

    std::size_t size() const { return rows_; }
    // IndexError naming TensorDataset::batch for a row out of range.
    TensorBatch<T> batch(std::span<const std::size_t> rows) const;

    const std::vector<Array<T>>& tensors() const { return tensors_; }
    const Labels& labels() const { return labels_; }

private:
    std::vector<Array<T>> tensors_;
    Labels labels_;
    bool has_labels_;
    std::size_t rows_ = 0;
};

extern template struct TensorBatch<float>;
extern template struct TensorBatch<double>;
extern template class TensorDataset<float>;
extern template class TensorDataset<double>;

}  // namespace xg::data
