"""make bench: every benchmark, each printing its ratio against the baseline it must beat."""

from . import (
    build_time,
    compression,
    face_crops,
    fomm_animation,
    frame_sampling,
    generation_scaling,
    mini_generation,
    space_latency,
    tpsmm_animation,
    training_throughput,
    upload_augment,
)

if __name__ == "__main__":
    frame_sampling.main()
    compression.main()
    build_time.main([])
    face_crops.main([])
    mini_generation.main()
    training_throughput.main([])
    upload_augment.main([])
    fomm_animation.main([])
    tpsmm_animation.main([])
    generation_scaling.main([])
    space_latency.main([])
