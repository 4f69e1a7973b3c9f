"""How Chapter 5's backward parts call the student's functions (runs in the student's process: numpy and
the stdlib).

A backward pass is graded on the cache the statement fixes, ``(x, *options)``, built here from the
case's inputs, so that a mistake in a forward pass never costs the points of its backward pass.
(The forward parts and dead_unit_fraction need no adapter: their options arrive as Python floats.)
"""


def relu_backward(student, dout, x):
    return student.relu_backward(dout, (x,))


def leaky_relu_backward(student, dout, x, negative_slope):
    return student.leaky_relu_backward(dout, (x, negative_slope))


def elu_backward(student, dout, x, alpha):
    return student.elu_backward(dout, (x, alpha))


def softplus_backward(student, dout, x, beta, threshold):
    return student.softplus_backward(dout, (x, beta, threshold))
