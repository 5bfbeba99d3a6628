#pragma once
// Random image augmentation for training: horizontal flips and shifts, as torchvision's
// RandomHorizontalFlip and RandomCrop(size, padding) with zero padding.
//
// Each image's draw is a function of (seed, epoch, row): its row in the data set, not its place
// in a batch. So an epoch's augmented images are the same for any batch size, any order of the
// batches, any number of data-parallel ranks, and after a resume, while every epoch draws anew.
//
//     xg::data::AugmentedImages<float> augmented(train, {.flip = true, .shift = 2, .seed = 7});
//     xg::train::Trainer trainer(net, adam, augmented, loss, options);
//     auto epochs = std::make_shared<xg::train::LambdaCallback>();   // tells it which epoch runs
//     epochs->epoch_begin = [&](xg::train::TrainerBase&, std::size_t e) { augmented.set_epoch(e); };
//     trainer.add_callback(epochs);
//
// (The Trainer's evaluation sets have the training set's type: AugmentedImages with the default
// options, which change nothing.)
#include <cstddef>
#include <cstdint>
#include <span>

#include "data/tensor_dataset.hpp"
#include "graph/array.hpp"

namespace xg::data {

struct AugmentOptions {
    bool flip = false;       // mirror left-right with probability 1/2
    std::size_t shift = 0;   // move by dy, dx drawn uniformly from [-shift, shift], zeros coming in
    std::uint64_t seed = 0;
};

// Augments images (B, C, H, W) in place, every channel of an image alike; rows[i] is image i's
// index in its data set. ShapeError (naming augment_images and the shape) unless images is 4-D
// with rows.size() images; ValueError for a shift of H or W or more.
template <class T>
void augment_images(Array<T>& images, std::span<const std::size_t> rows, std::size_t epoch,
                    const AugmentOptions& options);

// A data set whose batches are augmented: batch(rows) gathers from `data` (which must outlive
// it) and augments the copies of its tensor `tensor`, (N, C, H, W) images, for the current epoch,
// set by set_epoch (from a Trainer callback's on_epoch_begin, as above). The options and the
// tensor are checked at construction (the errors of augment_images, and ValueError naming
// AugmentedImages for a tensor index out of range).
template <class T>
class AugmentedImages {
public:
    AugmentedImages(const TensorDataset<T>& data, AugmentOptions options, std::size_t tensor = 0);
    AugmentedImages(TensorDataset<T>&&, AugmentOptions, std::size_t = 0) = delete;  // would dangle

    std::size_t size() const { return data_->size(); }
    TensorBatch<T> batch(std::span<const std::size_t> rows) const;
    void set_epoch(std::size_t epoch) { epoch_ = epoch; }
    std::size_t epoch() const { return epoch_; }

private:
    const TensorDataset<T>* data_;
    AugmentOptions options_;
    std::size_t tensor_;
    std::size_t epoch_ = 0;
};

extern template class AugmentedImages<float>;
extern template class AugmentedImages<double>;

}  // namespace xg::data
