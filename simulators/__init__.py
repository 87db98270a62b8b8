"""Device-side simulators of the workcell's instruments and the simulated world.

An independent implementation of each instrument's wire protocol, written from the protocol
sheets, so host drivers can be tested byte for byte without hardware. Never imports ``drivers``
or ``lab``.
"""

from simulators.faults import Disconnect, FaultConfig, FaultInjector
from simulators.grbl import GrblSim
from simulators.ika_namur import IkaNamurSim
from simulators.mt_sics import MtSicsSim
from simulators.ne1000 import NE1000Sim
from simulators.scpi_lcr import ScpiLcrSim
from simulators.transport import PtyServer, TcpServer
from simulators.workcell import DEMO_DEVICES, FULL_DEVICES, SimulatedWorkcell
from simulators.world import Sample, SimulatedWorld, TruthFn, load_truth

__all__ = [
    "DEMO_DEVICES",
    "FULL_DEVICES",
    "Disconnect",
    "FaultConfig",
    "FaultInjector",
    "GrblSim",
    "IkaNamurSim",
    "MtSicsSim",
    "NE1000Sim",
    "PtyServer",
    "Sample",
    "ScpiLcrSim",
    "SimulatedWorkcell",
    "SimulatedWorld",
    "TcpServer",
    "TruthFn",
    "load_truth",
]
