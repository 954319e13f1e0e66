from setuptools import setup

setup(
    name="tensorlib",
    version="0.1.0",
    description="A from-scratch deep-learning framework for convolutional networks with hand-written kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=["kernels", "kernels.matmul", "kernels.conv2d", "kernels.pool2d", "tensorlib", "nn"],
    python_requires=">=3.10",
    install_requires=["numpy>=1.24", "numba>=0.59"],
    extras_require={
        "test": ["pytest>=7", "pytest-benchmark>=4", "hypothesis>=6", "threadpoolctl>=3"],
        "cuda": ["cupy-cuda13x", "numba-cuda[cu13]"],
    },
)
