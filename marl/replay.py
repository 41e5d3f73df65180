"""Sequence replay on flashbax for recurrent off-policy learners.

The loop's rollouts are appended per environment as one long time stream; a
sample is a batch of contiguous windows of that stream. Windows may cross episode
boundaries: learners cut their recurrent state and their returns where an episode
starts (``observation.step_count == 0``) and ends (``done``).
"""

from __future__ import annotations

import flashbax as fbx


def make_sequence_buffer(
    num_envs: int, capacity_steps: int, batch_size: int, sequence_length: int
) -> fbx.trajectory_buffer.TrajectoryBuffer:
    """A buffer of ``capacity_steps`` env-steps fed by ``num_envs`` streams.

    Each sample is ``batch_size`` windows of ``sequence_length`` consecutive steps
    from one stream, starting at any step (period 1).
    """
    max_length_time_axis = max(capacity_steps // num_envs, sequence_length + 1)
    return fbx.make_trajectory_buffer(
        add_batch_size=num_envs,
        sample_batch_size=batch_size,
        sample_sequence_length=sequence_length,
        period=1,
        min_length_time_axis=sequence_length,
        max_length_time_axis=max_length_time_axis,
    )
