#include "data/tensor_dataset.hpp"

#include <cstring>
#include <string>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::data {

template <class T>
TensorDataset<T>::TensorDataset(std::vector<Array<T>> tensors, Labels labels)
    : tensors_(std::move(tensors)), labels_(std::move(labels)), has_labels_(labels_.size() > 0) {
    if (tensors_.empty() && !has_labels_) throw ValueError("TensorDataset: no tensor and no label");
    std::string shapes;
    for (const Array<T>& t : tensors_) shapes += (shapes.empty() ? "" : ", ") + shape_str(t.shape());
    if (has_labels_) shapes += fmt::format("{}labels ({},)", shapes.empty() ? "" : ", ", labels_.size());
    rows_ = tensors_.empty() ? labels_.size() : (tensors_[0].dimension() ? tensors_[0].shape()[0] : 0);
    for (const Array<T>& t : tensors_)
        if (t.dimension() == 0 || t.shape()[0] != rows_)
            throw ShapeError(fmt::format("TensorDataset: every tensor needs the same first dimension, got {}", shapes));
    if (has_labels_ && labels_.size() != rows_)
        throw ShapeError(fmt::format("TensorDataset: the labels do not match the tensors' rows: {}", shapes));
}

template <class T>
TensorBatch<T> TensorDataset<T>::batch(std::span<const std::size_t> rows) const {
    for (std::size_t r : rows)
        if (r >= rows_)
            throw IndexError(fmt::format("TensorDataset::batch: row {} is out of range for {} rows", r, rows_));
    TensorBatch<T> out;
    for (const Array<T>& t : tensors_) {
        Shape shape(t.shape().begin(), t.shape().end());
        const std::size_t row_size = rows_ ? t.size() / rows_ : 0;
        shape[0] = rows.size();
        Array<T> part = Array<T>::from_shape(shape);
        for (std::size_t i = 0; i < rows.size(); ++i)
            if (row_size) std::memcpy(part.data() + i * row_size, t.data() + rows[i] * row_size, row_size * sizeof(T));
        out.x.push_back(std::move(part));
    }
    if (has_labels_) {
        out.y = Labels::from_shape({rows.size()});
        for (std::size_t i = 0; i < rows.size(); ++i) out.y(i) = labels_(rows[i]);
    }
    return out;
}

template struct TensorBatch<float>;
template struct TensorBatch<double>;
template class TensorDataset<float>;
template class TensorDataset<double>;

}  // namespace xg::data
