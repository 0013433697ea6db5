# Two commands do all the setup on a fresh machine:
#   make demo   install e810pipe and run it on the bundled captures and profiles
#   make test   install everything the tests need (tshark, graphviz, chromium) and run them
PYTHON ?= python3
APT := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get)

.PHONY: demo test system-deps

demo:
	$(PYTHON) -m pip install --quiet .
	e810pipe parse pcaps/mixed-tunnels.pcap --vxlan-port 4789 --geneve-port 6081 | tail -n 12
	e810pipe parse pcaps/gre-kinds.pcap --profile examples/custom-gre.ddp | tail -n 6
	e810pipe run pcaps/vxlan.pcap --vxlan-port 4789 --vxlan-port 8472 \
	    --rules scenarios/vxlan/vxlan-vni.rules.txt --split demo-queues
	e810pipe trace pcaps/vxlan.pcap --index 0 --vxlan-port 4789 --vxlan-port 8472 \
	    --rules scenarios/vxlan/vxlan-vni.rules.txt
	e810pipe check scenarios/*/*.scenario.yaml | grep -E '^scenarios/|passed,'

system-deps:
	@command -v tshark >/dev/null 2>&1 || { \
	  $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq tshark; }
	@command -v dot >/dev/null 2>&1 || { \
	  $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq graphviz; }
	@command -v chromium >/dev/null 2>&1 || { \
	  $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq chromium; }

test: system-deps
	$(PYTHON) -m pip install --quiet ".[test]"
	ruff check e810pipe tests bench pcaps
	ruff format --check e810pipe tests bench pcaps
	mypy e810pipe
	cd tests && $(PYTHON) -m pytest -q -p no:cacheprovider
