"""The LoadTest extension of the seed (``loadtests.beta.kuar.com``), built on kuar's public API.

``seed/`` holds the seed's CustomResourceDefinition and its ``my-loadtest`` object exactly as
chapter 17 prints them.
"""
