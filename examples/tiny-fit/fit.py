"""Fit a polynomial to noisy samples of sin(3x) by gradient descent and print the validation loss.

Pure Python and deterministic (fixed seeds), so one run takes well under a second on a CPU and
the same parameters always give the same number. The last line is `metric: <loss>`.
"""

import math
import random

from params import DEGREE, LEARNING_RATE, MOMENTUM, STEPS, WEIGHT_DECAY


def samples(rng: random.Random, count: int) -> list[tuple[float, float]]:
    points = []
    for _ in range(count):
        x = rng.uniform(-1.0, 1.0)
        points.append((x, math.sin(3.0 * x) + rng.gauss(0.0, 0.05)))
    return points


def powers(x: float) -> list[float]:
    return [x**k for k in range(DEGREE + 1)]


def loss(weights: list[float], points: list[tuple[float, float]]) -> float:
    total = 0.0
    for x, y in points:
        error = sum(w * f for w, f in zip(weights, powers(x))) - y
        total += error * error
    return total / len(points)


def train(points: list[tuple[float, float]]) -> list[float]:
    weights = [0.0] * (DEGREE + 1)
    velocity = [0.0] * (DEGREE + 1)
    features = [(powers(x), y) for x, y in points]
    for _ in range(STEPS):
        grad = [0.0] * len(weights)
        for f, y in features:
            error = sum(w * v for w, v in zip(weights, f)) - y
            for i, value in enumerate(f):
                grad[i] += 2.0 * error * value / len(points)
        for i in range(len(weights)):
            velocity[i] = MOMENTUM * velocity[i] - LEARNING_RATE * (grad[i] + WEIGHT_DECAY * weights[i])
            weights[i] += velocity[i]
    return weights


def main() -> None:
    rng = random.Random(7)
    train_points, val_points = samples(rng, 48), samples(rng, 48)
    weights = train(train_points)
    print(f"train loss: {loss(weights, train_points):.6f}")
    print(f"metric: {loss(weights, val_points):.6f}")


if __name__ == "__main__":
    main()
