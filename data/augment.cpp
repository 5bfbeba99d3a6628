#include "data/augment.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::data {
namespace {

// SplitMix64's finaliser: a well-mixed 64-bit value from any input, so that neighbouring rows and
// epochs give unrelated draws.
std::uint64_t mix(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// ShapeError or ValueError, naming `op`, unless images of `shape` (B, C, H, W) take the options.
void check(std::string_view op, const Shape& shape, const AugmentOptions& o) {
    if (shape.size() != 4)
        throw ShapeError(fmt::format("{}: expects images (N, C, H, W), got shape {}", op, shape_str(shape)));
    if (o.shift > 0 && (o.shift >= shape[2] || o.shift >= shape[3]))
        throw ValueError(fmt::format("{}: a shift of {} for images of {} x {} (at most one less than each side)", op,
                                     o.shift, shape[2], shape[3]));
}

}  // namespace

template <class T>
void augment_images(Array<T>& images, std::span<const std::size_t> rows, std::size_t epoch, const AugmentOptions& o) {
    check("augment_images", images.shape(), o);
    if (images.shape()[0] != rows.size())
        throw ShapeError(fmt::format("augment_images: {} row indices for images of shape {}", rows.size(),
                                     shape_str(images.shape())));
    if (!o.flip && o.shift == 0) return;
    const std::size_t channels = images.shape()[1];
    const long h = static_cast<long>(images.shape()[2]), w = static_cast<long>(images.shape()[3]);
    const long s = static_cast<long>(o.shift), span = 2 * s + 1;
    std::vector<T> plane(images.shape()[2] * images.shape()[3]);
    T* p = images.data();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const std::uint64_t draw = mix(mix(mix(o.seed) ^ epoch) ^ rows[i]);
        const bool flip = o.flip && (draw & 1) != 0;
        // the flip from bit 0, dy and dx in [-shift, shift] from two other 20-bit fields (a
        // modulo's bias below span / 2^20: 5e-6 for a shift of 2)
        const auto field = [&](int at) {
            return static_cast<long>(((draw >> at) & 0xfffff) % static_cast<std::uint64_t>(span)) - s;
        };
        const long dy = field(4), dx = field(24);
        for (std::size_t c = 0; c < channels; ++c, p += plane.size()) {
            std::copy_n(p, plane.size(), plane.data());
            // out(r, q) = in(r - dy, q') with q' = q - dx, mirrored if flip; zero outside
            for (long r = 0; r < h; ++r)
                for (long q = 0; q < w; ++q) {
                    const long sr = r - dy, sq = q - dx;
                    const bool inside = sr >= 0 && sr < h && sq >= 0 && sq < w;
                    const long col = flip ? w - 1 - sq : sq;
                    p[r * w + q] = inside ? plane[static_cast<std::size_t>(sr * w + col)] : T(0);
                }
        }
    }
}

template <class T>
AugmentedImages<T>::AugmentedImages(const TensorDataset<T>& data, AugmentOptions options, std::size_t tensor)
    : data_(&data), options_(options), tensor_(tensor) {
    if (tensor >= data.tensors().size())
        throw ValueError(fmt::format("AugmentedImages: tensor {} of a data set of {}", tensor, data.tensors().size()));
    check("AugmentedImages", data.tensors()[tensor].shape(), options);
}

template <class T>
TensorBatch<T> AugmentedImages<T>::batch(std::span<const std::size_t> rows) const {
    TensorBatch<T> b = data_->batch(rows);
    augment_images(b.x[tensor_], rows, epoch_, options_);
    return b;
}

template void augment_images(Array<float>&, std::span<const std::size_t>, std::size_t, const AugmentOptions&);
template void augment_images(Array<double>&, std::span<const std::size_t>, std::size_t, const AugmentOptions&);
template class AugmentedImages<float>;
template class AugmentedImages<double>;

}  // namespace xg::data
