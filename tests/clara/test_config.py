"""Configuration: defaults load, environment overrides apply, and every bad value stops start-up clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clara.config import DEFAULT_CONFIG_PATH, ENVIRONMENT, config_from_mapping, load_config, section_keys
from clara.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_shipped_config_toml_loads_and_matches_the_defaults():
    config = load_config(DEFAULT_CONFIG_PATH, environ={})
    assert config.mongodb.database == "mlops_labeller_db"
    assert config.model.classes[0] == "SIGRE" and config.model.timezone == "Europe/Madrid"


def test_environment_overrides_deployment_values_and_secrets():
    config = config_from_mapping({}, {"MONGODB_URI": "mongodb://db.example:27017/?replicaSet=rs0", "PORT": "8080",
                                      "WHYLABS_API_KEY": "key", "WHYLABS_DEFAULT_ORG_ID": "org-1",
                                      "WHYLABS_DEFAULT_DATASET_ID": "model-1",
                                      "WHYLABS_API_ENDPOINT": "http://127.0.0.1:9/"})
    assert config.mongodb.uri.startswith("mongodb://db.example") and config.web.port == 8080
    assert config.whylabs.enabled and config.whylabs.endpoint == "http://127.0.0.1:9/"
    assert "key" not in repr(config)  # secrets never appear in logs of the config


@pytest.mark.parametrize("raw, message", [
    ({"consumer": {"batch_size": "500"}}, "consumer.batch_size = '500': expected an integer"),
    ({"consumer": {"batch_size": 0}}, "consumer.batch_size = 0: expected an integer of at least 1"),
    ({"web": {"prot": 5004}}, "unknown key web.prot"),
    ({"webb": {}}, "unknown section [webb]"),
    ({"model": {"timezone": "Europe/Madird"}}, "model.timezone = 'Europe/Madird': expected an IANA time zone"),
    ({"mongodb": {"uri": "localhost:27017"}}, "mongodb.uri = 'localhost:27017': expected a MongoDB URI"),
    ({"mongodb": {"uri": "mongodb://user:pw@db/"}}, "mongodb.uri holds credentials"),
    ({"whylabs": {"api_key": "k"}}, "set the environment variable WHYLABS_API_KEY"),
    ({"model": {"colors": ["red"]}}, "model.colors = ['red']: expected one entry per class (7)"),
    ({"model": {"classes": ["a", "a"], "colors": ["x", "y"], "training_counts": [1, 2]}}, "expected distinct"),
    ({"profiles": {"local_store": "yes"}}, "profiles.local_store = 'yes': expected true or false"),
    ({"whylabs": {"endpoint": "ftp://x"}}, "whylabs.endpoint = 'ftp://x': expected an http(s) URL"),
    ({"web": {"port": 70000}}, "web.port = 70000: expected a TCP port"),
    ({"estimates": {"min_day_reviews": 0}}, "estimates.min_day_reviews = 0: expected an integer of at least 1"),
    ({"estimates": {"reference_days": 91}}, "estimates.reference_days = 91: expected a number of days from 1 to 90"),
    ({"estimates": {"calibrated_within": 1.5}}, "estimates.calibrated_within = 1.5: expected a number from 0"),
    ({"estimates": {"f1_draws": 0}}, "estimates.f1_draws = 0: expected an integer of at least 1"),
    ({"estimates": {"bbse_draws": -1}}, "estimates.bbse_draws = -1: expected an integer of at least 1"),
    ({"estimates": {"seed": -1}}, "estimates.seed = -1: expected an integer of zero or more"),
    ({"estimates": {"seed": "zero"}}, "estimates.seed = 'zero': expected an integer"),
    ({"estimates": {"draws": 5}}, "unknown key estimates.draws"),
    ({"drift": {"calibration_min_change": 2}}, "drift.calibration_min_change = 2.0: expected a number from 0 to 1"),
    ({"drift": {"calibration_min_bin_reviews": 0}},
     "drift.calibration_min_bin_reviews = 0: expected an integer of at least 1"),
    ({"drift": {"label_shift_method": "em"}}, "drift.label_shift_method = 'em': expected 'bbse' or 'rlls'"),
    ({"drift": {"label_shift_min_distance": -0.1}}, "drift.label_shift_min_distance = -0.1: expected a number"),
    ({"drift": {"multiple_testing": "bonferroni"}}, "drift.multiple_testing = 'bonferroni': expected 'none', 'holm'"),
])
def test_bad_values_name_the_key_the_value_and_the_expectation(raw, message):
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(raw, {}, source="config.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("config.toml")


def test_bad_environment_values_are_named():
    with pytest.raises(ConfigError, match="environment variable PORT = 'http': expected an integer"):
        config_from_mapping({}, {"PORT": "http"})
    with pytest.raises(ConfigError, match="environment variable MONGODB_URI = 'postgres://x'"):
        config_from_mapping({}, {"MONGODB_URI": "postgres://x"})


def test_unreadable_files_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[consumer\nbatch_size = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_every_setting_and_environment_variable_is_in_the_readme():
    text = README.read_text()
    for section, keys in section_keys().items():
        for key in keys:
            assert re.search(rf"`{section}\.{key}`", text), f"{section}.{key} is not documented in README.md"
    for variable in ENVIRONMENT:
        assert f"`{variable}`" in text, f"{variable} is not documented in README.md"
