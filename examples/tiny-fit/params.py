"""The knobs of the fit. Agents change only this file."""

LEARNING_RATE = 0.05
STEPS = 150
MOMENTUM = 0.0
DEGREE = 3
WEIGHT_DECAY = 0.0
